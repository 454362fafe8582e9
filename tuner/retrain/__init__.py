"""Retraining the best configurations over several seeds: which to retrain and how the seeds
decide the winner (`selection`, no Ray), and the retrain runs on the cluster (`runs`)."""
