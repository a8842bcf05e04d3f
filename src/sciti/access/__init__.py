"""sciti.access"""
