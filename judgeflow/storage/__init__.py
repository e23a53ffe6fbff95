"""Where judgeflow's outputs live: local run directories, manifests, and S3-compatible stores."""
