"""kybern.client"""
