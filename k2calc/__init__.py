"""k2calc: will a large open LLM fit, how fast, at what cost. Pure core (never imports streamlit)."""
