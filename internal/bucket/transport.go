package bucket

import (
	"net"
	"net/http"
	"time"
)

// NewTransport is the HTTP transport of the remote stores (S3 and HTTP):
// many concurrent requests to one host, proxies from the environment, and
// no transparent compression, so that an object stored with a
// Content-Encoding (a zstd narinfo) is returned as stored.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}
