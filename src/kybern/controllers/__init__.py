"""kybern.controllers"""
