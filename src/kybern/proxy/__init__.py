"""kybern.proxy"""
