"""kybern.storage"""
