"""Model heads beyond the plain token classifier: word shape features, a CRF, document context, class weights."""
