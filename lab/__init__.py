"""The simulated fleet: WinRM/PSRP hosts, Entra + Graph service, PKI, CRL server and scenarios."""
