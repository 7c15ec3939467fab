"""The e-licence library (电子证照库)."""
