"""sciti.demo"""
