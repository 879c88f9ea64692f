"""XML namespaces, action URIs and shell constants of MS-WSMV, as Windows writes them."""

from __future__ import annotations

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSMV = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
NS_POWERSHELL = "http://schemas.microsoft.com/powershell"

SHELL_ACTION = NS_SHELL + "/"
TRANSFER_ACTION = NS_TRANSFER + "/"

ACTION_CREATE = TRANSFER_ACTION + "Create"
ACTION_DELETE = TRANSFER_ACTION + "Delete"
ACTION_GET = TRANSFER_ACTION + "Get"
ACTION_COMMAND = SHELL_ACTION + "Command"
ACTION_SEND = SHELL_ACTION + "Send"
ACTION_RECEIVE = SHELL_ACTION + "Receive"
ACTION_SIGNAL = SHELL_ACTION + "Signal"

ACTION_WSMAN_FAULT = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ACTION_ADDRESSING_FAULT = NS_ADDRESSING + "/fault"
ANONYMOUS = NS_ADDRESSING + "/role/anonymous"

POWERSHELL_RESOURCE_PREFIX = NS_POWERSHELL + "/"
SHELL_RESOURCE = NS_SHELL
CONFIG_RESOURCE = "http://schemas.microsoft.com/wbem/wsman/1/config"

SIGNAL_TERMINATE = SHELL_ACTION + "signal/Terminate"
# pypsrp sends the short form; PowerShell itself sends the same string.
SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"
COMMAND_STATE_DONE = SHELL_ACTION + "CommandState/Done"
