"""automl-od's built-in plugins (installed as ``automl_od.plugins``), registered by default."""
