"""SEENN-II's policy network: reward and estimators, what the policy sees (`inputs`), its training
and test-time decision (`training`), and loading a saved policy (`loading`)."""
