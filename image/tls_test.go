package image

import (
	"crypto/x509"
	"net/http/httptest"
)

func x509Pool(ts *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ts.Certificate())
	return p
}
