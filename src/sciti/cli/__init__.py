"""sciti.cli"""
