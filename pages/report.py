"""Report: a printable summary of the scenario with every assumption, and downloads to attach."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from k2calc.errors import K2CalcError
from k2calc.links import share_query
from k2calc.report import (
    report_html,
    report_json,
    report_markdown,
    report_pdf,
    tables_csv,
)
from ui import cached_estimate, estimate_or_stop, page_setup, session_baseline

scenario, catalogs = page_setup()

st.title("Report")
result = estimate_or_stop(scenario, catalogs)

pinned = session_baseline()
try:
    baseline = cached_estimate(pinned, catalogs) if pinned is not None else None
except K2CalcError as exc:
    st.warning(f"The pinned baseline cannot be computed and is left out of the report: {exc}")
    baseline = None

base = (st.context.url or "").removesuffix("/report")
query = urlencode(share_query(scenario, catalogs, pinned))
share = f"{base}/?{query}" if query else f"{base}/"
st.markdown("**Share link**: opens this app with exactly this scenario (defaults are left out of it)"
            + (" and the pinned baseline." if pinned is not None else "."))
st.code(share, language=None)
name = f"k2calc-{scenario.model}-{scenario.count}x-{scenario.hardware}"
c0, c1, c2, c3, c4 = st.columns(5)
c0.download_button("PDF (A4)", lambda: report_pdf(result, share_url=share, baseline=baseline),
                   file_name=f"{name}.pdf", mime="application/pdf", key="download_pdf", type="primary",
                   help="Verdict, key numbers, charts, every assumption with its date and source, and the share "
                        "link, on A4 pages (made when you click).")
c1.download_button("HTML report", lambda: report_html(result, share_url=share, baseline=baseline),
                   file_name=f"{name}.html", mime="text/html", key="download_html")
c2.download_button("Markdown", report_markdown(result, share_url=share, baseline=baseline), file_name=f"{name}.md",
                   mime="text/markdown", key="download_md")
c3.download_button("JSON", lambda: report_json(result, share_url=share, baseline=baseline), file_name=f"{name}.json",
                   mime="application/json", key="download_json",
                   help="The scenario and every result, as the CLI's --json prints them.")
with c4.popover("CSV tables"):
    for fname, text in tables_csv(result).items():
        st.download_button(fname, text, file_name=f"{name}-{fname}", mime="text/csv", key=f"download_{fname}")
st.divider()
st.markdown(report_markdown(result, share_url=share, baseline=baseline))
