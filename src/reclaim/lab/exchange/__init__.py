"""Exchange Online's and Security & Compliance's admin InvokeCommand: ``endpoint`` (the HTTP side),
``envelope`` (the service's bodies), ``cmdlets`` (the cmdlet table and its handlers), ``message_trace``
and ``reference`` (the parameters Microsoft's cmdlets take, from ``cmdlets.yaml``)."""
