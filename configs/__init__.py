# Hydra loads the shipped configs as the package module newsclf.configs.
