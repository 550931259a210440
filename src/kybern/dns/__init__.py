"""kybern.dns"""
