package cognito

// ListRate is the current pace of e's list requests.
func ListRate(e *Extractor) float64 { return e.list.rate() }
