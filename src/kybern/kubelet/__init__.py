"""kybern.kubelet"""
