"""kybern.apiserver"""
