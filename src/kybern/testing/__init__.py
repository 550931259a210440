"""kybern.testing"""
