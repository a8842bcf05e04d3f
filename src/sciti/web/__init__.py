"""sciti.web"""
