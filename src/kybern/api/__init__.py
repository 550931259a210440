"""kybern.api"""
