"""kybern.runtime"""
