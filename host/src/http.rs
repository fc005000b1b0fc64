//! Outbound HTTP for guests (`wasi:http/outgoing-handler`), to the authorities granted with
//! `wasm_allow_net` only; every other request fails with `HTTP-request-denied`.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capabilities::NetGrant;

/// The per-instance HTTP policy.
pub struct HttpPolicy {
    pub net: Arc<NetGrant>,
}

type Response =
    wasmtime_wasi_http::Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>)>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Response> + Send> {
        drop(fut);
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let granted = uri.host().is_some_and(|host| self.net.permits_authority(host, port));
        if !granted {
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
