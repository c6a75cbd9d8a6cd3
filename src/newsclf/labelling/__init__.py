"""Labelling: gold annotations (``gold``), labelling rules (``rules``), the label model
(``label_model``), its report (``report``) and the weak labelling of a dataset build
(``weak``)."""
