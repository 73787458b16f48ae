using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Transport.Tests;

/// <summary>
/// A self-signed server certificate made for one test (never a committed key): for localhost and 127.0.0.1, written
/// as PEM certificate and key files into a temporary directory that disposing removes.
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    private TestCertificates(string directory, X509Certificate2 certificate)
    {
        Directory = directory;
        Certificate = certificate;
        CertificatePath = Path.Combine(directory, "server.pem");
        KeyPath = Path.Combine(directory, "server.key");
        Write(certificate, CertificatePath, KeyPath);
    }

    public string Directory { get; }

    public X509Certificate2 Certificate { get; }

    public string CertificatePath { get; }

    public string KeyPath { get; }

    public static TestCertificates Create(string subject = "localhost")
    {
        string directory = Path.Combine(Path.GetTempPath(), "transport-tls-tests", Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        return new TestCertificates(directory, CreateCertificate(subject));
    }

    public static X509Certificate2 CreateCertificate(string subject, bool serverAuthentication = true)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(subject);
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, 0, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuthentication ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], critical: false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }

    /// <summary>A self-signed certificate authority, with its key.</summary>
    public static X509Certificate2 CreateAuthority(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }

    /// <summary>A client certificate issued by <paramref name="authority"/>, with its key.</summary>
    public static X509Certificate2 IssueClientCertificate(X509Certificate2 authority, string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, 0, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 issued = request.Create(authority, now.AddMinutes(-1), now.AddHours(12), RandomNumberGenerator.GetBytes(8));
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Writes the certificate and its key as PEM, the key file readable by its owner only.</summary>
    public static void Write(X509Certificate2 certificate, string certificatePath, string keyPath)
    {
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        using ECDsa key = certificate.GetECDsaPrivateKey()!;
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>Command-line settings that give endpoint <paramref name="endpoint"/> of an example host these files as its TLS certificate.</summary>
    public string[] EndpointArguments(string endpoint) =>
    [
        $"--Transport:Endpoints:{endpoint}:Tls:Certificate:Path={CertificatePath}",
        $"--Transport:Endpoints:{endpoint}:Tls:Certificate:KeyPath={KeyPath}",
    ];

    /// <summary>Client options that trust exactly this certificate (as a pinned certificate), for <paramref name="host"/>.</summary>
    public SslClientAuthenticationOptions ClientOptions(string host = "localhost", params string[] applicationProtocols)
    {
        byte[] expected = Certificate.RawData;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = host,
            RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(expected),
        };
        if (applicationProtocols.Length > 0)
        {
            options.ApplicationProtocols = [.. applicationProtocols.Select(p => new SslApplicationProtocol(p))];
        }

        return options;
    }

    public void Dispose()
    {
        Certificate.Dispose();
        if (System.IO.Directory.Exists(Directory))
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
