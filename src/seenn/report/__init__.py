"""Tables, figures and the PDF report, built only from files earlier stages wrote."""
