"""Atende technician console (Streamlit). Entry point: `streamlit run console/app.py`."""
