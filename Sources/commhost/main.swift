import CommHost
