"""symphony_ros: the Symphony actor-critic (Ishuov et al., arXiv 2512.10477) as a ROS 2 package."""
__version__ = "0.1.0"
