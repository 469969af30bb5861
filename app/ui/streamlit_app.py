"""The script `tome serve` hands to Streamlit: `streamlit run streamlit_app.py -- --store DIR [--model DIR]`."""

import argparse

from app.ui.main import main

parser = argparse.ArgumentParser(prog="tome serve")
parser.add_argument("--store", required=True)
parser.add_argument("--model")
args = parser.parse_args()
main(args.store, args.model)
