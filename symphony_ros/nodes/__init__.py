"""Thin rclpy nodes: message ↔ numpy conversion in :mod:`.common`, algorithm logic in ``symphony_ros.core``."""
