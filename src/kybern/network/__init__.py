"""kybern.network"""
