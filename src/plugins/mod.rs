//! Integrations with the systems pincher reports on (AWS, Ops Manager, Chef). Plugins know
//! nothing of HTTP or the terminal: they take settings and clients and return typed values.
