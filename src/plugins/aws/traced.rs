//! The SDK's HTTPS client, wrapped: every attempt the SDK retries is counted
//! (`pincher_aws_retries_total`, and the progress bar), and while traces are exported the
//! W3C trace headers of the call in progress are added to every request, so a collector in
//! front of the endpoint (or a VPC endpoint proxy) can join the trace.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::config::telemetry;

/// The SDK's default HTTPS client (rustls with aws-lc, proxies from the environment), built
/// as the SDK builds it, wrapped.
pub fn client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    SharedHttpClient::new(Traced(inner))
}

#[derive(Debug)]
struct Traced(SharedHttpClient);

impl HttpClient for Traced {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TracedConnector(self.0.http_connector(settings, components)))
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct TracedConnector(SharedHttpConnector);

impl HttpConnector for TracedConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        if is_retry(request.headers().get("amz-sdk-request")) {
            crate::metrics::METRICS.aws_retries.inc();
        }
        if telemetry::enabled() {
            for (name, value) in telemetry::call_headers() {
                request.headers_mut().insert(name, value);
            }
        }
        self.0.call(request)
    }
}

/// Whether the SDK's `amz-sdk-request: attempt=N; max=M` header names a second or later
/// attempt.
fn is_retry(header: Option<&str>) -> bool {
    header
        .and_then(|value| {
            value
                .split(';')
                .find_map(|part| part.trim().strip_prefix("attempt="))
        })
        .and_then(|n| n.trim().parse::<u32>().ok())
        .is_some_and(|attempt| attempt > 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_told_by_the_attempt_number() {
        assert!(!is_retry(Some("attempt=1; max=6")));
        assert!(is_retry(Some("attempt=2; max=6")));
        assert!(is_retry(Some("ttl=20261202T141200Z; attempt=3; max=6")));
        assert!(!is_retry(None));
        assert!(!is_retry(Some("attempt=x")));
    }
}
