"""The parts of bench/bench_graph.py (the ROS 2 graph against the headless trainer): :mod:`.common` (hygiene, machine,
node processes, percentiles), :mod:`.profiler` (where the time goes, no patching), :mod:`.cost` (1. seconds per
learning step), :mod:`.latency` (2. env_step -> joint_commands), :mod:`.ingest` (3. learner ingest), :mod:`.report`
(printing, JSON). They use only the public API of symphony_ros."""
