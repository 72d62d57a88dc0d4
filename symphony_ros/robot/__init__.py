"""The robot side without ROS: the robot description (:mod:`.description`) and the simulated driver's MuJoCo robot
(:mod:`.mujoco_robot`)."""
