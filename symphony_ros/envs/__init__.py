"""gymnasium / MuJoCo helpers (no rclpy)."""
