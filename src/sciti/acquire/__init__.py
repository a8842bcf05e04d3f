"""sciti.acquire"""
