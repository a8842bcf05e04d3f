"""sciti.risk"""
