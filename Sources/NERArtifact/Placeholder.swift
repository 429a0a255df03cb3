// NERArtifact: under construction.
