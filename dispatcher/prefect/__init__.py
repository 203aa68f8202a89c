"""The Prefect side: one workspace's API (``api``), setting states (``states``), job configurations
(``jobconfig``, ``references``, ``templating``), the events doorbell (``events``), creating push pools (``pools``)."""
