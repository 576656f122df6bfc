"""Reports from the run store: an offline HTML page with plotly figures, and static figures.

``qnnlab report RESULTS_DIR`` reads the comparison's runs from ``qnnlab.sqlite``
(:mod:`qnnlab.report.data`), draws the figures (:mod:`qnnlab.report.figures`) and writes one
self-contained HTML file (:mod:`qnnlab.report.html`) or PNG/PDF files
(:mod:`qnnlab.report.static`). plotly is an optional extra: ``pip install 'qnnlab[report]'``.
"""
