"""kybern.cli"""
