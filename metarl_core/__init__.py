"""metarl_core: the learners (model_based, policy), their shared run plumbing (run) and the log
scorer (log_replay); torch, free of ROS."""
