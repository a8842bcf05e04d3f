"""sciti.refine"""
