"""sciti.api"""
