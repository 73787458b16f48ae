using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

/// <summary>
/// The development certificate for GreetingHost's TLS endpoints that have no certificate of their own: self-signed for
/// localhost, 127.0.0.1 and ::1, made at the first run and kept as PEM files (<c>localhost.pem</c>, <c>localhost.key</c>)
/// in <c>DevCertificate:Directory</c>, by default <c>$XDG_DATA_HOME/transport/dev-certs</c>
/// (<c>~/.local/share/transport/dev-certs</c>). Never for production: give an endpoint <c>Tls:Certificate</c> instead.
/// </summary>
internal static partial class DevCertificate
{
    public const string CertificateFile = "localhost.pem";
    public const string KeyFile = "localhost.key";

    /// <summary>
    /// The TLS endpoints of <paramref name="configuration"/> that need the development certificate: a <c>Tls</c> section
    /// not turned off, no certificate or SNI entries of their own, and none in <c>Transport:EndpointDefaults:Tls</c>.
    /// </summary>
    public static List<string> EndpointsNeedingIt(IConfiguration configuration)
    {
        IConfigurationSection transport = configuration.GetSection("Transport");
        if (HasCertificate(transport.GetSection("EndpointDefaults:Tls:Certificate")))
        {
            return [];
        }

        var endpoints = new List<string>();
        foreach (IConfigurationSection endpoint in transport.GetSection("Endpoints").GetChildren())
        {
            IConfigurationSection tls = endpoint.GetSection("Tls");
            if (tls.Exists() && !string.Equals(tls["Enabled"], "false", StringComparison.OrdinalIgnoreCase)
                && !HasCertificate(tls.GetSection("Certificate")) && !tls.GetSection("Sni").Exists())
            {
                endpoints.Add(endpoint.Key);
            }
        }

        return endpoints;
    }

    /// <summary>The directory the certificate lives in: <c>DevCertificate:Directory</c>, else under the user's data directory.</summary>
    public static string? Directory(IConfiguration configuration)
    {
        string? configured = configuration["DevCertificate:Directory"];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured);
        }

        // $XDG_DATA_HOME, else ~/.local/share, on Linux, whether it exists yet or not (a fresh machine has neither).
        string data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        return string.IsNullOrEmpty(data) ? null : Path.Combine(data, "transport", "dev-certs");
    }

    /// <summary>
    /// The certificate and key files in <paramref name="directory"/>: the ones there if they load and stay valid for a
    /// day more, else a new pair written there (key readable by its owner only). Throws when the directory cannot be
    /// created or written.
    /// </summary>
    public static (string CertificatePath, string KeyPath, bool Created) Ensure(string directory, TimeProvider time)
    {
        string certificatePath = Path.Combine(directory, CertificateFile);
        string keyPath = Path.Combine(directory, KeyFile);
        if (IsUsable(certificatePath, keyPath, time.GetUtcNow()))
        {
            return (certificatePath, keyPath, false);
        }

        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
        }
        else
        {
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        using X509Certificate2 certificate = Create(time.GetUtcNow());
        using ECDsa key = certificate.GetECDsaPrivateKey()!;
        // Written beside and renamed over, so that two hosts starting at once never read half a file; the key first,
        // so that a certificate on disk always has its key.
        string suffix = "." + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".tmp";
        WriteOwnerOnly(keyPath + suffix, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(certificatePath + suffix, certificate.ExportCertificatePem());
        File.Move(keyPath + suffix, keyPath, overwrite: true);
        File.Move(certificatePath + suffix, certificatePath, overwrite: true);
        return (certificatePath, keyPath, true);
    }

    private static X509Certificate2 Create(DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(365));
    }

    private static bool IsUsable(string certificatePath, string keyPath, DateTimeOffset now)
    {
        if (!File.Exists(certificatePath) || !File.Exists(keyPath))
        {
            return false;
        }

        try
        {
            using X509Certificate2 certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            return certificate.HasPrivateKey && certificate.NotBefore <= now.UtcDateTime && certificate.NotAfter > now.UtcDateTime.AddDays(1);
        }
        catch (CryptographicException)
        {
            return false;     // damaged or foreign files: made again
        }
    }

    private static void WriteOwnerOnly(string path, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var writer = new StreamWriter(path, System.Text.Encoding.ASCII, options);
        writer.Write(text);
    }

    private static bool HasCertificate(IConfigurationSection certificate) =>
        !string.IsNullOrWhiteSpace(certificate["Path"]) || !string.IsNullOrWhiteSpace(certificate["Subject"]);

    [LoggerMessage(1, LogLevel.Information, "Development certificate for localhost created: {Path} (trust it with curl --cacert {Path}; never use it in production).")]
    public static partial void Created(ILogger logger, string path);

    [LoggerMessage(2, LogLevel.Warning, "Endpoints {Endpoints} are not served: they have no Tls:Certificate and the development certificate could not be written to '{Directory}' ({Reason}). Set Transport:Endpoints:<name>:Tls:Certificate or DevCertificate:Directory.")]
    public static partial void Unavailable(ILogger logger, string endpoints, string directory, string reason);
}
