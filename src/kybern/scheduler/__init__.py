"""kybern.scheduler"""
