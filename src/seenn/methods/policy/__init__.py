"""SEENN-II's policy network: reward and estimators (`estimators`), what the policy sees
(`inputs`), its training and test-time decision (`training`), choosing among policies
(`selection`), and loading a saved policy (`loading`)."""
